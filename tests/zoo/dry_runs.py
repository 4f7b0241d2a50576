"""Many `--dry_run`s of one binary in one process, as the tests need them (a model
built per command line, not a process and a TensorFlow start per command line).

    python -m tests.zoo.dry_runs deeplab_dpc.train requests.json answers.json

requests.json: a list of argument lists; answers.json: one {"report", "error",
"notes"} per request, `report` being what the binary's dry run returned.
"""
import contextlib
import importlib
import io
import json
import sys

from absl import flags


def main():
    module_name, requests_path, answers_path = sys.argv[1:]
    module = importlib.import_module(module_name + ".__main__")
    from deeplab_dpc import cli
    from deeplab_dpc.errors import InputError

    with open(requests_path) as f:
        requests = json.load(f)
    answers = []
    for argv in requests:
        flags.FLAGS.unparse_flags()
        cli._NOTED.clear()  # each command line is a fresh process to its user
        stderr = io.StringIO()
        report = error = None
        try:
            flags.FLAGS([module_name, *argv, "--dry_run"])
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                report = module.main([module_name])
        except (InputError, flags.Error) as e:
            error = e.as_flags() if isinstance(e, InputError) else str(e)
        notes = cli.accepted_notes(flags.FLAGS) if error is None else []
        notes += [line[len("note: "):] for line in stderr.getvalue().splitlines()
                  if line.startswith("note: ")]
        answers.append({"report": report, "error": error, "notes": notes})
        import keras

        keras.backend.clear_session()
    with open(answers_path, "w") as f:
        json.dump(answers, f, default=str)


if __name__ == "__main__":
    main()
