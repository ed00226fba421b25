"""The mode loops: chat, tool and code interpreter."""
