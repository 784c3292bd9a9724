# Lauks kit firmware (MicroPython). Three layers: drivers/ (sensors), net/ (Wi-Fi, NTP, MQTT), core/ (pure logic).
VERSION = "0.4.0"
