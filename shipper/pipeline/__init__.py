"""The event pipeline: envelope (common fields), queues (memory and disk) and the publisher
that feeds an output. Processors will run here too, before the queue."""
