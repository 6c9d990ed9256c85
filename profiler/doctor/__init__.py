"""What this machine can run: the doctor's checks, and the devices plugged in."""
