def greet(greeting, name):
    return f"{greeting}, {name}!"
