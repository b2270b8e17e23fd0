/** Loads every built-in channel rule into the registry (each module registers its own ops). */
import './linear';
import './elementwise';
import './channelwise';
import './movement';
