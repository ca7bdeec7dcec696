from mindscape_ops.cli import main

main()
