"""The ground floor: what every track shares (files, registries, the method interface, LoRAs, models, task data,
training, scoring, the job runtime and the shared stages). It imports nothing above it."""
