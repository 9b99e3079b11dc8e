"""Benchmarks measured side by side in one run (`molebench bench`); none of the DAG's results depends on them,
except the MixLoRA efficiency figure, which runs one."""
