"""Linear flow with a retried step: attempts and artifacts through the metadata service."""

from metaflow import FlowSpec, current, retry, step


class MetadataLinearFlow(FlowSpec):
    @step
    def start(self):
        self.numbers = [1, 2, 3]
        self.greeting = "hello"
        self.next(self.flaky)

    # The first attempt fails on purpose, so attempt 0 and attempt 1 both register artifacts.
    @retry(times=1, minutes_between_retries=0)
    @step
    def flaky(self):
        self.attempt_seen = current.retry_count
        if current.retry_count == 0:
            raise RuntimeError("attempt 0 fails on purpose")
        self.total = sum(self.numbers)
        self.next(self.end)

    @step
    def end(self):
        self.result = self.total * 10


if __name__ == "__main__":
    MetadataLinearFlow()
