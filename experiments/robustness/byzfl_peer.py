"""One run of ByzFL's DSGD benchmark (byzfl 0.0.11, benchmark/train.py) on
Fashion-MNIST read offline from the Debian IDX files.

ByzFL's own Client, Server, ByzantineClient and DataDistributor do the work,
configured as its benchmark's default_config (cnn_mnist, NLLLoss, SGD lr 0.1,
honest momentum 0.9, weight decay 1e-4, batch 25, Clipping -> NNM -> TrMean,
80/20 train/validation split, RandomHorizontalFlip + ToTensor for
Fashion-MNIST) and the training loop is train.py's DSGD loop. Two things
differ, and only in plumbing: the images come from a small IDX Dataset
instead of torchvision (no torchvision wheel matches the project's torch),
and the validation accuracy, which ByzFL uses only to pick hyperparameters,
is not computed.

Writes summary.json: {"steps": [...], "test_accuracy": [...], "seconds": S}.
"""

import argparse
import gzip
import importlib.util
import json
import os
import sys
import time
import types

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, random_split


def import_byzfl_without_benchmark():
    """byzfl/__init__.py imports byzfl.benchmark, which imports torchvision.
    Register the package without running that file, then import the parts
    the benchmark's training loop uses."""
    spec = importlib.util.find_spec("byzfl")
    if spec is None:
        sys.exit("byzfl is not installed: run experiments/setup.sh")
    package = types.ModuleType("byzfl")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["byzfl"] = package
    from byzfl.fed_framework import ByzantineClient, Client, DataDistributor, Server
    from byzfl.utils.misc import set_random_seed
    return Client, Server, ByzantineClient, DataDistributor, set_random_seed


def read_idx(path):
    opener = gzip.open if os.path.exists(path + ".gz") else open
    with opener(path + ".gz" if opener is gzip.open else path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class FashionMnistIdx(Dataset):
    """torchvision.datasets.FashionMNIST's interface (targets, transform)
    with transforms.Compose([RandomHorizontalFlip(), ToTensor()]) inlined."""

    def __init__(self, directory, train):
        prefix = "train" if train else "t10k"
        self.images = torch.from_numpy(read_idx(os.path.join(directory, prefix + "-images-idx3-ubyte")).copy())
        self.targets = torch.from_numpy(read_idx(os.path.join(directory, prefix + "-labels-idx1-ubyte")).copy()).long()
        self.transform = None

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        image = self.images[i].float().div(255).unsqueeze(0)
        if torch.rand(1) < 0.5:
            image = torch.flip(image, dims=[2])
        return image, int(self.targets[i])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--gamma", type=float, required=True)
    parser.add_argument("--f", type=int, required=True)
    parser.add_argument("--attack", required=True,
                        choices=["SignFlipping", "Optimal_InnerProductManipulation", "Optimal_ALittleIsEnough"])
    parser.add_argument("--aggregator", default="TrMean", choices=["TrMean", "GeometricMedian"])
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0, help="training seed (the data distribution seed is 0)")
    parser.add_argument("--test-samples", type=int, default=0, help="evaluate on the first N test images (0 = all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True, help="summary.json to write")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    Client, Server, ByzantineClient, DataDistributor, set_random_seed = import_byzfl_without_benchmark()

    nb_honest, f, batch_size, lr, momentum, weight_decay = 10, args.f, 25, 0.1, 0.9, 1e-4
    set_random_seed(0)  # data_distribution_seed
    dataset = FashionMnistIdx(args.data, train=True)
    train_size = int(0.8 * len(dataset))
    train_dataset, _ = random_split(dataset, [train_size, len(dataset) - train_size])
    test_set = FashionMnistIdx(args.data, train=False)
    if args.test_samples:
        test_set = Subset(test_set, range(args.test_samples))
    test_loader = DataLoader(test_set, batch_size=128, shuffle=False)
    client_loaders = DataDistributor({
        "data_distribution_name": "gamma_similarity_niid",
        "distribution_parameter": args.gamma,
        "nb_honest": nb_honest,
        "data_loader": train_dataset,
        "batch_size": batch_size,
    }).split_data()

    common = {"model_name": "cnn_mnist", "device": "cpu", "optimizer_name": "SGD", "learning_rate": lr,
              "weight_decay": weight_decay, "milestones": [], "learning_rate_decay": 1.0}
    honest = [Client(dict(common, loss_name="NLLLoss", LabelFlipping=False, training_dataloader=loader,
                          momentum=momentum, nb_labels=10, store_per_client_metrics=False))
              for loader in client_loaders]
    aggregator_info = {"name": args.aggregator, "parameters": {"f": f}}
    pre_agg_list = [{"name": "Clipping", "parameters": {}}, {"name": "NNM", "parameters": {"f": f}}]
    server = Server(dict(common, validation_loader=None, test_loader=test_loader,
                         aggregator_info=aggregator_info, pre_agg_list=pre_agg_list))
    byzantine = ByzantineClient({"name": args.attack, "f": f,
                                 "parameters": {"aggregator_info": aggregator_info, "pre_agg_list": pre_agg_list,
                                                "f": f}})

    set_random_seed(args.seed)  # training_seed
    steps, accuracies = [], []
    start = time.time()
    model = server.get_dict_parameters()
    for client in honest:
        client.set_model_state(model)
    for step in range(args.steps + 1):
        if step % args.eval_every == 0 or step == args.steps:
            steps.append(step)
            accuracies.append(server.compute_test_accuracy())
            print(f"step {step}: test accuracy {accuracies[-1]:.4f}", flush=True)
        if step == args.steps:
            break
        for client in honest:
            client.compute_gradients()
        gradients = [client.get_flat_gradients_with_momentum() for client in honest]
        server.update_model_with_gradients(gradients + byzantine.apply_attack(gradients))
        model = server.get_dict_parameters()
        for client in honest:
            client.set_model_state(model)
    summary = {"steps": steps, "test_accuracy": accuracies, "seconds": time.time() - start}
    with open(args.out, "w") as out:
        json.dump(summary, out)


if __name__ == "__main__":
    main()
