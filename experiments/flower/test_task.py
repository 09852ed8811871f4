"""Checks of the Flower side's replication of Cohort's task (python -m unittest, from this directory).

The generator must reproduce Cohort's reference outputs
(tests/core/random_test.cpp), the partition must be a disjoint cover with
Cohort's shard sizes, and the CNN must have the demo's 431,080 parameters.
"""
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "flower_app"))

from cohort_flower import task  # noqa: E402


class RngTest(unittest.TestCase):
    def test_matches_cohorts_reference_outputs(self):
        zero = task.Rng(0)
        self.assertEqual([zero.next_u64() for _ in range(2)], [0x99EC5F36CB75F2B4, 0xBF6E1F784956452A])
        answer = task.Rng(42)
        self.assertEqual([answer.next_u64() for _ in range(2)], [0x15780B2E0C2EC716, 0x6104D9866D113A7E])

    def test_fork_leaves_the_parent_alone_and_depends_on_the_stream(self):
        parent = task.Rng(7)
        a, b = parent.fork(1).next_u64(), parent.fork(2).next_u64()
        self.assertNotEqual(a, b)
        self.assertEqual(parent.next_u64(), task.Rng(7).next_u64())

    def test_uniform_below_stays_in_range(self):
        rng = task.Rng(3)
        self.assertTrue(all(rng.uniform_below(10) < 10 for _ in range(1000)))


class PartitionTest(unittest.TestCase):
    def test_iid_shards_are_a_disjoint_cover_of_even_size(self):
        shards = [task.iid_shard(1003, 8, part, seed=1) for part in range(8)]
        self.assertEqual(sorted(i for s in shards for i in s), list(range(1003)))
        self.assertEqual([len(s) for s in shards], [126] * 3 + [125] * 5)
        self.assertNotEqual(shards[0], list(range(126)))  # shuffled, not contiguous

    def test_planned_steps_rounds_like_cohort(self):
        self.assertEqual(task.planned_steps(1.0, 32, 7500), 235)
        self.assertEqual(task.planned_steps(0.1, 32, 7500), 24)


class ModelTest(unittest.TestCase):
    def test_cnn_size_and_seeded_init(self):
        a, b = task.make_model(1), task.make_model(1)
        self.assertEqual(sum(p.numel() for p in a.parameters()), 431080)
        for pa, pb in zip(a.parameters(), b.parameters()):
            self.assertTrue(bool((pa == pb).all()))
        bound = 1.0 / 25 ** 0.5  # conv1: fan_in = 1 * 5 * 5
        self.assertLessEqual(float(a.conv1.weight.abs().max()), bound)


if __name__ == "__main__":
    unittest.main()
