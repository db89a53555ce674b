"""Sample flow for the compute e2e test: a foreach, a @batch CPU step and a @batch(gpu=1) step.

The GPU step names the team's GPU queue from the environment (set from DSSTACK_BATCH_JOB_QUEUE_GPU of
the generated config). With DSSTACK_LOCAL_RUN=1 the @batch decorators are left off so `run` executes
every step locally (the emulator runs no containers) while still using the S3 datastore.
"""

import os

from metaflow import FlowSpec, batch, step

GPU_QUEUE = os.environ.get("DSSTACK_BATCH_JOB_QUEUE_GPU")


def on_batch(**kwargs):
    return (lambda f: f) if os.environ.get("DSSTACK_LOCAL_RUN") == "1" else batch(**kwargs)


class BatchFlow(FlowSpec):
    @step
    def start(self):
        self.shards = [1, 2, 3]
        self.next(self.square, foreach="shards")

    @on_batch(cpu=1, memory=2048)
    @step
    def square(self):
        self.value = self.input * self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.next(self.train)

    @on_batch(gpu=1, cpu=4, memory=15000, queue=GPU_QUEUE)
    @step
    def train(self):
        self.model = {"total": self.total}
        self.next(self.end)

    @step
    def end(self):
        assert self.total == 14


if __name__ == "__main__":
    BatchFlow()
