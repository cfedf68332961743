# Sourced by scripts: create .venv if needed and install the locked dependencies once per change.
VENV="${REELQUEUE_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
stamp="$VENV/.reelqueue-deps"
want=$(cat requirements-worker.txt requirements-api.txt pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== installing dependencies into $VENV"
  python -m pip install -q --upgrade pip
  extras=$(python - <<'PY'
import tomllib
data = tomllib.load(open("pyproject.toml", "rb"))
opt = data["project"]["optional-dependencies"]
print("\n".join(opt["gpu"] + opt["test"]))
PY
)
  # torch first and alone, so its local CPU wheel is used rather than a CUDA build (a +cpu build has
  # no hash on the index: the gpu and test extras are exact pins from pyproject.toml, not hashed)
  python -m pip install -q "$(echo "$extras" | grep '^torch==')"
  # Both images' locks, every file checked against its hash (scripts/lock writes them)
  python -m pip install -q --require-hashes -r requirements-worker.txt -r requirements-api.txt
  # The gpu and test extras on top; a locked version never moves (they are the constraints)
  locked=$(mktemp)
  grep -hE '^[A-Za-z0-9_.-]+==' requirements-worker.txt requirements-api.txt | cut -d' ' -f1 > "$locked"
  echo "$extras" | python -m pip install -q -r /dev/stdin -c "$locked"
  rm -f "$locked"
  echo "$want" > "$stamp"
fi
