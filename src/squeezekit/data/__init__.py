"""Datasets: labelled image folders and zips (CIFAR-10, Imagenette, wnid folders), decoding, pipelines."""
