"""A flow that fails while METADATA_TEST_FAIL=1 is set, and is then `resume`d without it."""

import os

from metaflow import FlowSpec, step


class MetadataResumeFlow(FlowSpec):
    @step
    def start(self):
        self.seed = 7
        self.next(self.fragile)

    @step
    def fragile(self):
        if os.environ.get("METADATA_TEST_FAIL") == "1":
            raise RuntimeError("fails on purpose; resume without METADATA_TEST_FAIL fixes it")
        self.doubled = self.seed * 2
        self.next(self.end)

    @step
    def end(self):
        self.final = self.doubled + 1


if __name__ == "__main__":
    MetadataResumeFlow()
