"""Foreach flow: many tasks of one step, a join, and foreach-execution-path metadata (filtered_tasks)."""

from metaflow import FlowSpec, step


class MetadataForeachFlow(FlowSpec):
    @step
    def start(self):
        self.letters = ["a", "b", "c"]
        self.next(self.shout, foreach="letters")

    @step
    def shout(self):
        self.letter = self.input
        self.loud = self.input.upper() * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.louds = sorted(i.loud for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    MetadataForeachFlow()
