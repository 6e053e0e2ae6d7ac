"""The quality classifier as an MLflow pyfunc model (logged "from code" by `brickyard quality train`).

    model = mlflow.pyfunc.load_model("models:/brickyard-quality/1")
    model.predict(["some text", "another"])          # -> P(high quality) per text

It wraps the fastText file stored with the model; brickyard's own jobs read that file directly.
"""

from __future__ import annotations

import mlflow
from mlflow.pyfunc import PythonModel


class FastTextQuality(PythonModel):
    def load_context(self, context):
        # absolute imports only: MLflow runs this file on its own, outside the package
        from brickyard.pipelines.text.quality import load

        self.model = load(context.artifacts["fasttext"])
        self.max_chars = int((context.model_config or {}).get("max_chars", 20000))

    def predict(self, context, model_input: list[str], params=None) -> list[float]:
        from brickyard.pipelines.text.quality import score_texts

        if hasattr(model_input, "iloc"):  # a DataFrame: its first column holds the texts
            model_input = model_input.iloc[:, 0].tolist()
        return score_texts(self.model, [str(t) for t in model_input], self.max_chars)


mlflow.models.set_model(FastTextQuality())
