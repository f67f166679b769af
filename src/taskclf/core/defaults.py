"""Every default the seed documents and DESIGN name, in one place."""

from __future__ import annotations

from typing import Final, Literal

# Personalization eligibility (Personalization Guide §4, train.calibrate page).
DEFAULT_MIN_LABELED_WINDOWS: Final = 200
DEFAULT_MIN_LABELED_DAYS: Final = 3
DEFAULT_MIN_DISTINCT_LABELS: Final = 3
DEFAULT_CALIBRATION_METHOD: Final[Literal["temperature", "isotonic"]] = "temperature"
# Isotonic regression overfits small validation sets; below this we warn.
ISOTONIC_MIN_ROWS_WARNING: Final = 1000
# k-fold within a user to decide whether a per-user calibrator beats the global one.
DEFAULT_PERSONAL_CV_FOLDS: Final = 3

# Documented two-pass temperature grid (the floor our exact optimizer must beat).
TEMPERATURE_GRID_COARSE: Final = (0.1, 5.0, 0.1)
TEMPERATURE_GRID_FINE_HALF_WIDTH: Final = 0.1
TEMPERATURE_GRID_FINE_STEP: Final = 0.01
TEMPERATURE_BOUNDS: Final = (0.05, 20.0)

# Inference.
DEFAULT_REJECT_THRESHOLD: Final = 0.55
REJECT_RATE_BOUNDS: Final = (0.05, 0.30)
DEFAULT_TARGET_SELECTIVE_ACCURACY: Final = 0.80
MIXED_UNKNOWN: Final = "Mixed/Unknown"
DEFAULT_SMOOTH_WINDOW: Final = 3
DEFAULT_MIN_BLOCK_SECONDS: Final = 180
DEFAULT_POLL_SECONDS: Final = 30.0
# The online log is fsynced once this many minutes of records were written since the last
# fsync (and always when the loop stops): predictions are derived data, recomputed from
# ActivityWatch after a power loss (see infer.prediction.OnlineRecordWriter).
DEFAULT_ONLINE_FSYNC_MINUTES: Final = 10
# At start the online loop reads this much history to rebuild the feature state (sessions,
# app runs, title repeats, look-back windows) and the smoothing context, as batch feature
# building reads the day before the days it builds; only the warm-up minutes are written.
DEFAULT_ONLINE_HISTORY_HOURS: Final = 24.0

# Features.
DEFAULT_BUCKET_SECONDS: Final = 60
DEFAULT_IDLE_GAP_SECONDS: Final = 300
DEFAULT_SCHEMA_VERSION: Final[Literal["v1", "v2", "v3"]] = "v3"
TITLE_SKETCH_BUCKETS: Final = 128
TITLE_HASH_CHARS: Final = 12
TITLE_BUCKETS: Final = 256
UNKNOWN_CATEGORY: Final = "__unknown__"

# Training.
DEFAULT_TRAIN_RATIO: Final = 0.70
DEFAULT_VAL_RATIO: Final = 0.15
DEFAULT_NUM_BOOST_ROUND: Final = 300
DEFAULT_EARLY_STOPPING_ROUNDS: Final = 30
DEFAULT_RANDOM_STATE: Final = 42
DEFAULT_CLASS_WEIGHT: Final[Literal["balanced", "none"]] = "balanced"

# Acceptance gates (evaluated on test days).
GATE_MACRO_F1: Final = 0.65
GATE_WEIGHTED_F1: Final = 0.70
GATE_BREAKIDLE_PRECISION: Final = 0.95
GATE_BREAKIDLE_RECALL: Final = 0.90
GATE_MIN_CLASS_PRECISION: Final = 0.50
CALIBRATION_ECE_BINS: Final = 15

# Labels.
DEFAULT_QUEUE_MAX_PER_DAY: Final = 20
MAX_USER_ID_LENGTH: Final = 128

# ActivityWatch.
DEFAULT_AW_HOST: Final = "http://localhost:5600"
DEFAULT_AW_TIMEOUT_SECONDS: Final = 10.0
DEFAULT_AW_RETRIES: Final = 3
DEFAULT_USER_ID: Final = "default-user"
DEFAULT_DEVICE_ID: Final = "default-device"
DEFAULT_TIMEZONE: Final = "UTC"

# Synthetic data (``taskclf synth`` and the demo).
DEFAULT_SYNTH_USERS: Final = 6
DEFAULT_SYNTH_DAYS: Final = 14

# On-disk format versions.
BUNDLE_FORMAT_VERSION: Final = 1
CALIBRATOR_STORE_FORMAT_VERSION: Final = 1
INFERENCE_POLICY_VERSION: Final = 1
