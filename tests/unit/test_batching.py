"""Dynamic batching logic with a numpy stand-in for the model."""
import numpy as np

from workers.inference.batching import run_batched


class RecordingModel:
    """Doubles its input and sums rows; remembers each forward pass's batch size."""

    def __init__(self, fail_on=None):
        self.batch_sizes = []
        self.fail_on = fail_on

    def __call__(self, batch):
        self.batch_sizes.append(len(batch))
        if self.fail_on is not None and (batch == self.fail_on).any():
            raise ValueError("poisoned instance")
        return [batch * 2, batch.sum(axis=1)]


def jobs(*sizes):
    start = 0
    out = []
    for size in sizes:
        out.append(np.arange(start, start + size * 3, dtype=np.float32).reshape(size, 3))
        start += size * 3
    return out


def test_results_equal_running_each_job_alone():
    inputs = jobs(1, 3, 2)
    outcomes = run_batched(RecordingModel(), inputs, max_batch_size=32)
    for x, outcome in zip(inputs, outcomes, strict=True):
        np.testing.assert_array_equal(outcome.outputs[0], x * 2)
        np.testing.assert_array_equal(outcome.outputs[1], x.sum(axis=1))
        assert outcome.error is None and outcome.batch_size == 6


def test_jobs_of_different_sizes_come_back_to_their_owner():
    inputs = jobs(5, 1, 7, 2)
    outcomes = run_batched(RecordingModel(), inputs, max_batch_size=4)
    assert [len(o.outputs[0]) for o in outcomes] == [5, 1, 7, 2]
    for x, outcome in zip(inputs, outcomes, strict=True):
        np.testing.assert_array_equal(outcome.outputs[0], x * 2)


def test_no_forward_pass_exceeds_the_limit():
    model = RecordingModel()
    run_batched(model, jobs(10, 3, 30), max_batch_size=8)
    assert max(model.batch_sizes) <= 8
    assert sum(model.batch_sizes) == 43


def test_a_failing_instance_fails_only_its_own_job():
    inputs = jobs(2, 2, 2)
    poisoned = float(inputs[1][0, 0])
    outcomes = run_batched(RecordingModel(fail_on=poisoned), inputs, max_batch_size=32)
    assert outcomes[0].error is None and outcomes[2].error is None
    assert isinstance(outcomes[1].error, ValueError)
    np.testing.assert_array_equal(outcomes[2].outputs[0], inputs[2] * 2)


def test_a_model_returning_the_wrong_row_count_fails_the_job():
    outcomes = run_batched(lambda batch: [batch[:1]], jobs(3), max_batch_size=32)
    assert "returned 1 rows for 3 instances" in str(outcomes[0].error)
