# RPGP as PGP's public code runs it (pgp_real_target_expo.py), as changes to
# an RPGP config (see pgp_code.py beside this file): filters ranked by the
# L1 norm of the gradient of the ongoing training pass (GradientL1, no extra
# passes); the weakest half of a step's selection removed, the rest
# re-initialised, all of it removed at the last step.
rpgp_code = dict(
    criterion=dict(type='GradientL1'),
    soft_steps=None,
    remove_ratio=0.5,
    soft_mode='reinit')
