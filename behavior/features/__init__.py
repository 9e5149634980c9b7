"""What the network reads per frame: the vector streams, CNN crop features, video-backbone features."""
