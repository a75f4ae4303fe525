"""Run ``hat-ebm`` with a signal sent to itself at a point the test names, not after a sleep.

    python tests/signal_hook.py WHEN N SIGNAL -- hat-ebm arguments...

WHEN is one of:
    ``after-step``        after training step N (once the step's callbacks ran)
    ``after-checkpoint``  right after the checkpoint of step N is saved
    ``before-rename``     when an export is about to rename its complete temporary directory (N unused)

The hooks wrap TensorFlow's, Keras's and the OS's entry points, not this
project's code, so the code under test runs unchanged. The signal is sent with
``os.kill`` to this process: its handler (or SIGKILL) takes effect at once,
so the interrupted point is the same on every run.
"""

import os
import signal
import sys


def send(name):
    os.kill(os.getpid(), getattr(signal, name))


def main():
    # A shell's background job (`cmd &`, as CI scripts often run) starts with
    # SIGINT ignored; the training job rightly keeps an ignored signal ignored,
    # so restore Python's default here, where the test sends SIGINT itself.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    when, number, name, separator, *argv = sys.argv[1:]
    assert separator == "--", "usage: signal_hook.py WHEN N SIGNAL -- ARGS"
    number = int(number)
    if when == "after-step":
        from keras.callbacks import CallbackList

        on_train_batch_end = CallbackList.on_train_batch_end

        def hooked(self, batch, logs=None):
            on_train_batch_end(self, batch, logs)
            if int(self.model.optimizer.iterations.numpy()) == number:
                send(name)

        CallbackList.on_train_batch_end = hooked
    elif when == "after-checkpoint":
        import tensorflow as tf

        save = tf.train.CheckpointManager.save

        def hooked(self, checkpoint_number=None, **kwargs):
            path = save(self, checkpoint_number=checkpoint_number, **kwargs)
            if int(checkpoint_number) == number:
                send(name)
            return path

        tf.train.CheckpointManager.save = hooked
    elif when == "before-rename":
        rename = os.rename

        def hooked(source, target, *args, **kwargs):
            if os.path.basename(source).startswith(".incomplete-"):
                send(name)
            return rename(source, target, *args, **kwargs)

        os.rename = hooked
    else:
        raise SystemExit(f"unknown hook point {when!r}")

    from hat_ebm_tf.cli.main import main as hat_ebm

    hat_ebm(argv)


if __name__ == "__main__":
    main()
