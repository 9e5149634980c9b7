"""The networks: the behavior classifier (CNN + BiLSTM) and the I3D video backbone."""
