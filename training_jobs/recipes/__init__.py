# Set by the platform for the processes it starts: die with the parent, even a SIGKILLed one.
# Here rather than in common.py so the worker can name it without importing torch.
DIE_WITH_PARENT_ENV = "ARBITER_DIE_WITH_PARENT"
