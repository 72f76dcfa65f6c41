"""The embedded runtime for one machine: a Kafka-compatible broker, Redis when
none answers, and every installed service as its own process."""
