"""Converters of the network ops: convolutions, pooling, batch norm, the LSTM cell."""
