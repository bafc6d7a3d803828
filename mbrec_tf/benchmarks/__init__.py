"""Speed and memory measurements behind `pipelines.benchmark` and `pipelines.serve_benchmark`.

`measures` (timing summaries, peak memory, the machine), `training_timings` (epochs, user
samples, ALS, all-reduced bytes), `step_profile` (where a training step's time goes),
`evaluation_timings` (full-ranking evaluation), `model_benchmark` (every figure of one model
and its report), `serving_server` (the server under test) and `serving_load` (clients, load
runs, the version switch and their report).
"""
