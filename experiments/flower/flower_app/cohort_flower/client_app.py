"""Flower ClientApp: trains the CNN on its shard as a Cohort worker does."""
import os
import time

import psutil
import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from cohort_flower import task

app = ClientApp()


def _shard(data_dir, parts, part, seed, cache_dir):
    """The normalised shard; cached on disk because the SuperNode starts a new
    ClientApp process for every message (round), and decoding the IDX files
    and replaying the partition each time would be charged to Flower."""
    path = os.path.join(cache_dir, f"shard-{parts}-{part}-{seed}.pt") if cache_dir else ""
    if path and os.path.exists(path):
        return torch.load(path)
    images, labels = task.load_split(data_dir, "train")
    index = torch.tensor(task.iid_shard(images.shape[0], parts, part, seed), dtype=torch.long)
    shard = (images.index_select(0, index), labels.index_select(0, index))
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        torch.save(shard, path + ".tmp")
        os.replace(path + ".tmp", path)
    return shard


@app.train()
def train(msg: Message, context: Context) -> Message:
    # From this process's start to here: interpreter, imports, Flower's setup
    # and fetching the message (the SuperNode starts a process per message).
    startup = time.time() - psutil.Process().create_time()
    run = context.run_config
    torch.set_num_threads(int(run["client-threads"]))
    part = int(context.node_config["partition-id"])
    parts = int(context.node_config["num-partitions"])
    seed = int(run["seed"])
    images, labels = _shard(str(run["data-dir"]), parts, part, seed, str(run["shard-cache"]))

    model = task.Cnn()
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    round_number = int(msg.content["config"]["server-round"])
    seen, loss, seconds = task.train_locally(
        model,
        images,
        labels,
        seed=task.task_seed(seed, round_number, part),
        local_epochs=float(run["local-epochs"]),
        batch_size=int(run["batch-size"]),
        lr=float(run["lr"]),
        momentum=float(run["momentum"]),
    )
    metrics = MetricRecord(
        {"num-examples": seen, "train-loss": loss, "train-seconds": seconds, "startup-seconds": startup})
    content = RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics})
    return Message(content=content, reply_to=msg)
