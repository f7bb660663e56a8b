"""The book's steps 59 and 60: a recurrent network learns the noisy sine curve with
truncated backprop through time (hidden 100, BPTT length 30, Adam, 100 epochs).

Each test is the book's listing with ``dezero`` replaced by ``zerograd``, plus a seed and
the assertion. (Step 59 compares a (1, 1) prediction with a (1,) target: mean_squared_error
aligns shapes that hold the same elements, and refuses only those that would broadcast to
more, like (N,) against (N, 1).)
"""
import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import Model
from zerograd.dataloaders import SeqDataLoader

max_epoch = 100
hidden_size = 100
bptt_length = 30


class SimpleRNN(Model):
    def __init__(self, hidden_size, out_size):
        super().__init__()
        self.rnn = L.RNN(hidden_size)
        self.fc = L.Linear(out_size)

    def reset_state(self):
        self.rnn.reset_state()

    def __call__(self, x):  # the book overrides __call__ here
        h = self.rnn(x)
        y = self.fc(h)
        return y


class BetterRNN(Model):
    def __init__(self, hidden_size, out_size):
        super().__init__()
        self.rnn = L.LSTM(hidden_size)
        self.fc = L.Linear(out_size)

    def reset_state(self):
        self.rnn.reset_state()

    def forward(self, x):
        y = self.rnn(x)
        y = self.fc(y)
        return y


@pytest.mark.slow
def test_step59_simple_rnn_learns_the_sine_curve():
    np.random.seed(0)
    train_set = zerograd.datasets.SinCurve(train=True)
    seqlen = len(train_set)

    model = SimpleRNN(hidden_size, 1)
    optimizer = zerograd.optimizers.Adam().setup(model)

    losses = []
    for epoch in range(max_epoch):
        model.reset_state()
        loss, count = 0, 0

        for x, t in train_set:  # one point at a time, batch size 1
            x = x.reshape(1, 1)
            y = model(x)
            loss += F.mean_squared_error(y, t)  # (1, 1) against (1,), as the book
            count += 1

            if count % bptt_length == 0 or count == seqlen:
                model.cleargrads()
                loss.backward()
                loss.unchain_backward()
                optimizer.update()

        # loss is never reset within the epoch (only unchained): it holds the epoch's sum.
        avg_loss = float(loss.data) / count
        losses.append(avg_loss)
        print('| epoch %d | loss %f' % (epoch + 1, avg_loss))

    assert count == seqlen == 999
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.01, losses[-10:]
    assert losses[-1] < losses[0]


@pytest.mark.slow
def test_step60_lstm_with_seq_data_loader_learns_the_sine_curve():
    np.random.seed(0)
    batch_size = 30
    train_set = zerograd.datasets.SinCurve(train=True)
    dataloader = SeqDataLoader(train_set, batch_size=batch_size)
    seqlen = len(train_set)

    model = BetterRNN(hidden_size, 1)
    optimizer = zerograd.optimizers.Adam().setup(model)

    losses = []
    for epoch in range(max_epoch):
        model.reset_state()
        loss, count = 0, 0

        for x, t in dataloader:  # 30 parallel streams, x and t (30, 1)
            y = model(x)
            loss += F.mean_squared_error(y, t)
            count += 1

            if count % bptt_length == 0 or count == seqlen:
                model.cleargrads()
                loss.backward()
                loss.unchain_backward()
                optimizer.update()

        avg_loss = float(loss.data) / count
        losses.append(avg_loss)
        print('| epoch %d | loss %f' % (epoch + 1, avg_loss))

    assert count == len(dataloader) == 34
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.02, losses[-10:]
    assert losses[-1] < losses[0]
