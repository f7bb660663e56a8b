"""A kill in the middle of training, for the resume tests (test_callbacks.py,
test_dataloader_workers.py): a loss function that raises ``Stop`` after a number of calls."""
import zerograd.functions as F


class Stop(Exception):
    """Stands for a kill: raised from inside the training loop."""


def stopping_loss(after: int):
    """softmax_cross_entropy that raises Stop on its call number after + 1."""
    calls = [0]

    def loss_fn(y, t):
        calls[0] += 1
        if calls[0] > after:
            raise Stop
        return F.softmax_cross_entropy(y, t)
    return loss_fn
