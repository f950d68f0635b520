"""`selfinstruct eval`: a model under test answers an evaluation set on the job engine, and is scored
(verified accuracy, pairwise judgement against a reference, imitation NLL for local checkpoints)."""
