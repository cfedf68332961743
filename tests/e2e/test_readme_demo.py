"""The README's first command, run as a user would: both demo jobs finish on the embedded default."""

import os
import subprocess
from pathlib import Path

import av
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_demo_command_runs_a_transcode_and_a_wan_job_to_completion():
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELQUEUE_")}
    env["REELQUEUE_VENV"] = os.environ.get("REELQUEUE_VENV", str(ROOT / ".venv"))
    done = subprocess.run(
        [str(ROOT / "scripts" / "demo"), "--exit-when-done"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    outputs = [line.split(": ", 1)[1] for line in done.stdout.splitlines()
               if line.startswith("  ") and "var/demo/storage/outputs/" in line]
    assert len(outputs) == 3  # transcode + poster, Wan video
    assert "curl -H 'Authorization: Token " in done.stdout
    for output in outputs:
        path = ROOT / output
        assert path.stat().st_size > 0
        if path.suffix == ".mp4":
            with av.open(str(path)) as container:
                assert container.streams.video[0].codec_context.name == "h264"
