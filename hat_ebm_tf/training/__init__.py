"""The training side: the training job (``train``), its callbacks, TensorBoard logs (``tensorboard_log``) and the
import of reference checkpoints (``reference_import``). Configs (``hat_ebm_tf.config``), run directories
(``hat_ebm_tf.run_dir``) and their outputs and figures (``hat_ebm_tf.outputs``, ``hat_ebm_tf.plots``) are the
package's own."""
