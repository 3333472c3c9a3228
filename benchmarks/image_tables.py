"""The image-rd model's entropy-coder tables as shipped (fitted on training crops at export,
context_code.fit_tables) against tables built from the model's own Gaussians (build_tables): the
bits each spends on the 18 development photos at every trained quality (whole photos, untiled).

    .venv/bin/python -m benchmarks.image_tables     # -> benchmarks/results/image_tables.md
"""

from benchmarks import write_result
from streamcodec import threads
from streamcodec.core import context_code
from streamcodec.image import rd_codec
from streamcodec.image.rd_model import load_rd_model

MODEL = "image-rd"


def main() -> None:
    threads.configure(2, blas=2)
    from streamcodec.train.photos import load_split

    model = load_rd_model(MODEL)
    gaussian = context_code.build_tables(context_code.scale_edges())
    photos = load_split("dev")
    pixels = sum(p.shape[0] * p.shape[1] for p in photos)
    lines = [f"# image-rd's entropy-coder tables: {len(photos)} development photos, model id "
             f"{model.model_id.hex()}", "", "bits per pixel of z and y, headers aside", "",
             "| quality | shipped (fitted) tables | Gaussian tables | fitted vs Gaussian |", "|---|---|---|---|"]
    for q in range(len(model.tables["gain"])):
        bits = {"fitted": 0, "gaussian": 0}
        for rgb in photos:
            h, w = rgb.shape[:2]
            symbols = rd_codec.tile_symbols(model, rd_codec.analyse(model, rgb, (0, 0, h, w)), float(q), h, w)
            for name, code in (("fitted", model.code), ("gaussian", gaussian)):
                bits[name] += sum(8 * len(context_code.encode(v, b, code)) for v, b in symbols)
        f, g = bits["fitted"] / pixels, bits["gaussian"] / pixels
        lines.append(f"| {q} | {f:.4f} | {g:.4f} | {100 * (f / g - 1):+.1f} % |")
    write_result("image_tables.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
