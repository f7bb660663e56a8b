"""The recurrent step of ``zerograd.functions``: lstm_cell and lstm_step.

Every case of the registry's 'rnn' topic goes through ``check_op`` (both outputs, as
c + 2 h). The fused LSTMState/LSTMOutput against the composed cell are in
test_fast_paths.py.
"""
import pytest

import ops


@pytest.mark.parametrize('case', ops.cases(ops.GRAD, 'rnn'), ids=ops.case_id)
def test_check_op(case):
    """The registry's rnn cases (ops.py) through zerograd.testing.check_op."""
    ops.check_case(case)
