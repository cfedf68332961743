# Sourced by scripts: create .venv if needed and install the pinned dependencies once per change.
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
  # torch first and alone, so its local CPU wheel is used rather than a CUDA build
  python -m pip install -q "$(echo "$extras" | grep '^torch==')"
  echo "$extras" | python -m pip install -q -r requirements-worker.txt -r requirements-api.txt -r /dev/stdin
  echo "$want" > "$stamp"
fi
