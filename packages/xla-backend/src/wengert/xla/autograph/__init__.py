def convert(f):
    return f
