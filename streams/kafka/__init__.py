"""Kafka adapters: topic administration and producers (`admin`), the worker's consumer-group member (`consumer`)."""
from streams.kafka.admin import ensure_topics, new_producer
from streams.kafka.consumer import BatchConsumer, InputRecord, Offsets

__all__ = ["BatchConsumer", "InputRecord", "Offsets", "ensure_topics", "new_producer"]
