_base_ = ['./_base_/digits_uci2mnist.py', './_base_/rpgp.py']
