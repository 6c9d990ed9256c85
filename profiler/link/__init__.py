"""The wire to the board: frames and messages (protocol), the serial link and its deadlines (transport)."""
