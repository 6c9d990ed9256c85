"""pyserial URL handlers of our own (pyserial imports `<package>.protocol_<scheme>` for `<scheme>://`)."""
