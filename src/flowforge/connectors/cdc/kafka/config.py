"""Config of the Kafka Debezium-topic source (pydantic and the standard library only)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, SecretStr

from flowforge.connectors.config import ConnectionConfig, register_config


@register_config("kafka")
class KafkaConfig(ConnectionConfig):
    """Kafka topics carrying Debezium JSON (``JsonConverter``, with or without schemas).

    ```yaml
    connections:
      cord_kafka:
        type: kafka
        bootstrap_servers: localhost:9092
        topics: [cord.ConcordDb.dbo.Product]
        group_id: flowforge-product      # offsets are committed here after each bronze commit
        start: earliest                  # where a first run starts: earliest or latest
        options: {security.protocol: SASL_SSL, sasl.mechanism: PLAIN, sasl.username: etl}
        password: ${KAFKA_PASSWORD}      # becomes sasl.password
    ```
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    type: Literal["kafka"]
    bootstrap_servers: str
    topics: tuple[str, ...] = Field(..., min_length=1)
    group_id: str = "flowforge"
    start: Literal["earliest", "latest"] = "earliest"
    options: dict[str, str] = Field(default_factory=dict, description="Extra librdkafka settings.")
    password: SecretStr | None = None
    timeout_s: float = Field(30.0, gt=0, description="Seconds to wait for the broker and for planned messages.")

    def describe(self) -> str:
        return f"kafka://{self.bootstrap_servers.split(',')[0]}/{','.join(self.topics)}"

    def client_config(self) -> dict[str, str]:
        """librdkafka settings *with* the password; for the client only, never log them."""
        conf = {"bootstrap.servers": self.bootstrap_servers, "group.id": self.group_id,
                "enable.auto.commit": "false", "enable.auto.offset.store": "false",
                "auto.offset.reset": self.start, "isolation.level": "read_committed", **self.options}
        if self.password is not None:
            conf["sasl.password"] = self.password.get_secret_value()
        return conf
