"""A small Metaflow flow with a foreach, used by tests/e2e to prove the S3 datastore works in the emulator."""

from metaflow import FlowSpec, step


class ForeachFlow(FlowSpec):
    @step
    def start(self):
        self.shards = [1, 2, 3]
        self.next(self.square, foreach="shards")

    @step
    def square(self):
        self.value = self.input * self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(task.value for task in inputs)
        self.next(self.end)

    @step
    def end(self):
        assert self.total == 14, self.total


if __name__ == "__main__":
    ForeachFlow()
