"""Flower ServerApp: FedAvg over all clients, central evaluation after every round.

Writes one JSON line per round to the run config's metrics-file: test
accuracy and loss, the round's wall time (from the end of the previous
round's evaluation to the end of this one's, the same span as Cohort's
`seconds.total`), the slowest client's training time that round, and the
longest time a ClientApp process took from its start to its train function.
"""
import json
import time

from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from cohort_flower import task

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    run = context.run_config
    seed = int(run["seed"])
    clients = int(run["num-clients"])
    test_images, test_labels = task.load_split(str(run["data-dir"]), "test")
    model = task.make_model(seed)
    # Start the clock only once every SuperNode is connected, as Cohort's
    # coordinator waits for all its workers to register before round 1.
    while len(list(grid.get_node_ids())) < clients:
        time.sleep(0.2)
    out = open(str(run["metrics-file"]), "a", encoding="utf-8")
    clock = {"start": None, "previous": None, "slowest_train": None, "slowest_startup": None}

    def slowest_client(records, weighting_key):
        clock["slowest_train"] = max(float(r["metrics"]["train-seconds"]) for r in records)
        clock["slowest_startup"] = max(float(r["metrics"]["startup-seconds"]) for r in records)
        return MetricRecord({"max-train-seconds": clock["slowest_train"],
                             "max-startup-seconds": clock["slowest_startup"]})

    def evaluate(server_round: int, arrays: ArrayRecord):
        if server_round == 0:  # before round 1: Cohort does not evaluate the initial model either
            clock["start"] = clock["previous"] = time.perf_counter()
            return None
        model.load_state_dict(arrays.to_torch_state_dict())
        accuracy, loss = task.evaluate(model, test_images, test_labels)
        now = time.perf_counter()
        line = {
            "round": server_round,
            "test_accuracy": accuracy,
            "test_loss": loss,
            "round_seconds": now - clock["previous"],
            "elapsed_seconds": now - clock["start"],
            "max_train_seconds": clock["slowest_train"],
            "max_clientapp_startup_seconds": clock["slowest_startup"],
        }
        out.write(json.dumps(line) + "\n")
        out.flush()
        clock["previous"] = now
        return MetricRecord({"accuracy": accuracy, "loss": loss})

    strategy = FedAvg(
        fraction_train=1.0,
        fraction_evaluate=0.0,
        min_train_nodes=clients,
        min_available_nodes=clients,
        train_metrics_aggr_fn=slowest_client,
    )
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(model.state_dict()),
        num_rounds=int(run["num-server-rounds"]),
        evaluate_fn=evaluate,
    )
    out.close()
