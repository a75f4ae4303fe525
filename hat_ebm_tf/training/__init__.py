"""Training entry point, configs and command line of hat_ebm_tf."""
