"""The embedded emulator: run the platform locally without an AWS account."""
