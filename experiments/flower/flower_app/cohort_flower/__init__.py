"""Flower side of Study 3: the Cohort demo's job (Fashion-MNIST, CNN, IID shards, FedAvg) as a Flower App."""
