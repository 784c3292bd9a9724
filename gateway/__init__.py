"""The gateway: MQTT in, validated and de-duplicated readings out to InfluxDB."""
