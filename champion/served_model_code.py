"""The file MLflow keeps in each served model and runs to build it ("models from code").

Not imported by the project: a copy of it rides in every registered version; the class it
names is the project's own, so a served model runs with this checkout's reading code.
"""

import mlflow.models

from champion.scoring_model import ImageClassifier

mlflow.models.set_model(ImageClassifier())
