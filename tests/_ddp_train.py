"""Worker for test_distributed.py, started by torchrun: trains a recipe and records, per update,
this process's own target tokens and example ids next to the global count the loop used."""

import json
import sys
from pathlib import Path

from safetensors.torch import save_file

from seqattn import recipe as recipes
from seqattn.train import Trainer


class Recording(Trainer):
    records: list

    def _update(self, group):
        batches = [self.task.collate("train", index) for index in group]
        local = sum(self.task.batch_tokens(b) for b in batches)
        ids = sorted(int(i) for b in batches for i in b.index)
        loss, total = super()._update(group)
        self.records.append({"step": self.state.step + 1, "local": local, "global": total, "ids": ids})
        return loss, total


def main(recipe_path: str, out: str) -> None:
    trainer = Recording(recipes.load(recipe_path), Path(out) / "run")
    trainer.records = []
    trainer.fit()
    rank = trainer.acc.process_index
    params = {k: v.detach().contiguous().clone() for k, v in trainer.net.state_dict().items()}
    save_file(params, str(Path(out) / f"params_{rank}.safetensors"))
    Path(out, f"records_{rank}.json").write_text(json.dumps({"world": trainer.acc.num_processes,
                                                             "records": trainer.records}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
