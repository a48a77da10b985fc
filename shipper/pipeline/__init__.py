"""The event pipeline: envelope (common fields), processors and conditions (compiled once,
run before the queue), queues (memory and disk) and the publisher that feeds an output."""
