# Networking: Wi-Fi with backoff, NTP, and a small MQTT 3.1.1 client (packets in mqtt_packets, I/O in mqtt).
