from pathlib import Path

from molebench.core.io import write_text
from molebench.core.runtime import logged
from molebench.t2i import preconditions

inp = snakemake.input
with logged(snakemake.log[0], offline=snakemake.config["offline"]):
    files = [str(Path(d) / preconditions.PRECONDITION_FILE) for d in [inp.base, inp.clip, *inp.subjects]]
    write_text(snakemake.output[0], preconditions.table(files, snakemake.params.min_share).to_csv(index=False))
