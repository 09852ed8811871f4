"""Checks of Study 1's driver (python3 -m unittest test_robustness, from this directory).

The analysis must follow ByzFL's cell definition (average the seeds first,
then take the best evaluation point, then the worst attack), leave out
cells with a missing run, and the job it writes must be one `cohort
simulate` accepts and runs. The last check needs the binary: ctest passes
it in COHORT_BINARY; without it that test is skipped, and says so.
"""
import json
import os
import tempfile
import unittest

import robustness
from robustness import ATTACKS, Grid, Run


def tiny_grid(seeds=(1,), steps=4, eval_every=2):
    return Grid("test", steps, eval_every, 200, ("tm", "median"), (1.0,), (1,), seeds, (1.0,), (1,))


def write_summary(results, run, accuracies, steps=None):
    directory = os.path.join(results, run.name)
    os.makedirs(directory)
    with open(os.path.join(directory, "summary.json"), "w") as out:
        json.dump({"steps": steps or list(range(len(accuracies))), "test_accuracy": accuracies,
                   "wall_seconds": 1.0}, out)


class CellTest(unittest.TestCase):
    def setUp(self):
        self.scratch = tempfile.TemporaryDirectory()
        self.results = self.scratch.name

    def tearDown(self):
        self.scratch.cleanup()

    def test_seeds_are_averaged_before_the_best_point_is_taken(self):
        grid = tiny_grid(seeds=(1, 2))
        write_summary(self.results, Run("cohort", "tm", 1.0, 1, "sign-flip", 1), [0.5, 0.7])
        write_summary(self.results, Run("cohort", "tm", 1.0, 1, "sign-flip", 2), [0.7, 0.5])
        best = robustness.best_of(self.results, grid, Run("cohort", "tm", 1.0, 1, "sign-flip", 0))
        self.assertAlmostEqual(best, 0.6)  # max of the mean curve, not the mean of the maxima (0.7)

    def test_a_missing_seed_leaves_the_point_undefined(self):
        grid = tiny_grid(seeds=(1, 2))
        write_summary(self.results, Run("cohort", "tm", 1.0, 1, "sign-flip", 1), [0.5, 0.7])
        self.assertIsNone(robustness.best_of(self.results, grid, Run("cohort", "tm", 1.0, 1, "sign-flip", 0)))

    def test_the_cell_is_the_worst_attack_and_incomplete_cells_are_left_out(self):
        grid = tiny_grid()
        for attack, accuracy in zip(ATTACKS, (0.8, 0.3, 0.6)):
            write_summary(self.results, Run("cohort", "tm", 1.0, 1, attack, 1), [0.1, accuracy])
        write_summary(self.results, Run("cohort", "median", 1.0, 1, "sign-flip", 1), [0.9])
        rows = robustness.cell_table(grid, self.results, "cohort", grid.aggregators, grid.gammas, grid.fs)
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["aggregator"], "tm")
        self.assertEqual(rows[0]["worst_attack"], "optimal-ipm")
        self.assertAlmostEqual(rows[0]["worst_accuracy"], 0.3)
        table = robustness.markdown_tables(grid, self.results, rows, [])
        self.assertIn("| clip>NNM>TM | 1 | 0.300 (optimal-ipm) |", table)
        self.assertNotIn("| median |", table)


class GridTest(unittest.TestCase):
    def test_the_default_grid_has_every_cohort_cell_once_and_the_shared_cells_first(self):
        grid = robustness.GRIDS["default"]
        runs = robustness.runs_of(grid)
        cohort = [r for r in runs if r.system == "cohort"]
        self.assertEqual(len(cohort), 5 * 2 * 2 * 3)
        self.assertEqual(len(set(cohort)), len(cohort))
        self.assertEqual(len([r for r in runs if r.system == "byzfl"]), 2 * 2 * 3)
        first_other = next(i for i, r in enumerate(runs) if r.system == "cohort" and r.aggregator != "tm")
        shared = [i for i, r in enumerate(runs) if r.system == "cohort" and r.aggregator == "tm"]
        self.assertLess(max(shared), first_other)
        tuned_peer = [i for i, r in enumerate(runs) if r.system == "byzfl" and r.attack != "sign-flip"]
        self.assertEqual(min(tuned_peer), len(runs) - len(tuned_peer))  # the slowest go last

    def test_alie_is_mirrored_for_cohorts_deltas(self):
        job = robustness.job_for(tiny_grid(), Run("cohort", "tm", 0.33, 3, "optimal-alie", 2), "out")
        self.assertIn('name = "optimal-alie"\nbyzantine = 3', job)
        self.assertIn('sign = "-"', job)
        self.assertIn("gamma = 0.33", job)
        self.assertIn('pre = ["clip", "nnm"]', job)
        self.assertIn("keep_momentum = true", job)


@unittest.skipUnless(os.environ.get("COHORT_BINARY"), "COHORT_BINARY not set: no cohort to run the job with")
class EndToEndTest(unittest.TestCase):
    def test_a_short_run_goes_through_cohort_simulate_into_its_summary(self):
        grid = tiny_grid()
        run = Run("cohort", "tm", 1.0, 1, "sign-flip", 1)
        with tempfile.TemporaryDirectory() as results:
            summary = robustness.execute(grid, run, results, os.environ["COHORT_BINARY"])
            self.assertEqual(summary["steps"], [2, 4])
            for accuracy in summary["test_accuracy"]:
                self.assertGreaterEqual(accuracy, 0.0)
                self.assertLessEqual(accuracy, 1.0)
            directory = os.path.join(results, run.name)
            self.assertEqual(sorted(os.listdir(directory)), ["job.toml", "log.txt", "metrics.jsonl", "summary.json"])
            with open(os.path.join(directory, "metrics.jsonl")) as f:
                rounds = [json.loads(line) for line in f]
            self.assertEqual(len(rounds), 4)
            self.assertTrue(all(r["byzantine"] == 1 for r in rounds))
            self.assertEqual(robustness.load_summary(results, run)["test_accuracy"], summary["test_accuracy"])


if __name__ == "__main__":
    unittest.main()
